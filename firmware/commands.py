# Commands on the cmd topic: {"read_now": true}, {"stay_awake": true|false},
# {"interval": seconds, "15min" or null}. A command is checked whole before any of it applies;
# nothing reaches the meter but reads. Loaded when a command arrives, dropped afterwards.
#
# Anyone who can publish on the broker can send one, and a retained one comes back after every
# reconnect: nothing here may raise, and an error quotes a bounded prefix of what came, never
# all of it (a 256 KB key would otherwise land in the log, in diag and on the ESP32's heap).

import json

# The longest valid command ({"interval": "2h30min", "read_now": true, "stay_awake": false})
# is ~65 bytes; anything much longer is refused before it is parsed (deep nesting included).
MAX_COMMAND_BYTES = 256
_QUOTE_CHARS = 40
_EXAMPLE = '{"read_now": true}'


def quote(text):
    """text cut to a bounded prefix, for error messages and the log."""
    if len(text) > _QUOTE_CHARS:
        return "%s... (%d chars)" % (text[:_QUOTE_CHARS], len(text))
    return text


def handle(node, msg):
    """Apply a JSON command to node; False (counted, logged) when it is rejected."""
    try:
        text = _text(msg)
        cmd = _parse(text)
        apply = []
        for key in cmd:
            apply.append(_check(node, key, cmd[key]))
    except Exception as e:  # ValueError mostly; anything else a hostile payload provokes too
        node.command_errors += 1
        node._error("command rejected: %s" % e)
        return False
    interval = node.paced_interval()
    for attr, value in apply:
        setattr(node, attr, value)
    if node.paced_interval() != interval:
        node.discovery_sent = False  # expire_after is 3 x the interval: announce it again
    node.commands += 1
    node.last_command = cmd
    node.log("command: %s" % text)
    return True


def _text(msg):
    if len(msg) > MAX_COMMAND_BYTES:
        raise ValueError("%d bytes, a command is at most %d" % (len(msg), MAX_COMMAND_BYTES))
    if isinstance(msg, str):
        return msg
    try:
        return bytes(msg).decode()
    except Exception:
        raise ValueError("not UTF-8 text; expected JSON such as %s" % _EXAMPLE)


def _parse(text):
    try:
        cmd = json.loads(text)
    except Exception as e:  # ValueError; RecursionError for deep nesting on CPython
        raise ValueError("not JSON (%s): %s; expected an object such as %s"
                         % (quote(str(e)), quote(text), _EXAMPLE))  # fmt: skip
    if not isinstance(cmd, dict) or not cmd:
        raise ValueError("expected a JSON object such as %s, got %s" % (_EXAMPLE, quote(text)))
    return cmd


def _check(node, key, value):
    """(node attribute, value) the command sets, or ValueError."""
    if key == "read_now":
        if value is not True:
            raise ValueError("read_now: expected true, got %s" % quote(json.dumps(value)))
        return "read_requested", True
    if key == "stay_awake":
        if not isinstance(value, bool):
            raise ValueError("stay_awake: expected true or false, got %s"
                             % quote(json.dumps(value)))  # fmt: skip
        return "stay_awake", value
    if key == "interval":
        return "interval", _interval(node, value)
    raise ValueError("unknown command %s; expected read_now, stay_awake or interval"
                     % quote(json.dumps(key)))  # fmt: skip


def _interval(node, value):
    import durations

    if value is None:
        return node.cfg["update_interval"]  # back to the configured interval
    if isinstance(value, str):
        ms = durations.duration_ms(value)
        secs = None if ms is None or ms % 1000 else ms // 1000
    elif isinstance(value, int) and not isinstance(value, bool):
        secs = value
    else:
        secs = None
    low = durations.INTERVAL_MIN
    if node.cfg["battery"]["deep_sleep"]:
        low = durations.MIN_SLEEP_INTERVAL
    top = durations.INTERVAL_MAX
    if secs is None or not low <= secs <= top:
        raise ValueError('interval: expected %d..%d seconds, a duration such as "15min", "90s" '
                         'or "1h30min" in that range, or null for the configured one; got %s'
                         % (low, top, quote(json.dumps(value))))  # fmt: skip
    return secs
