# Commands on the cmd topic: {"read_now": true}, {"stay_awake": true|false},
# {"interval": seconds, "15min" or null}. A command is checked whole before any of it applies;
# nothing reaches the meter but reads. Loaded when a command arrives, dropped afterwards.

import json


def handle(node, msg):
    """Apply a JSON command to node; False (counted, logged) when it is rejected."""
    try:
        cmd = json.loads(msg)
        if not isinstance(cmd, dict) or not cmd:
            raise ValueError("expected a JSON object")
        apply = []
        for key in cmd:
            apply.append(_check(node, key, cmd[key]))
    except (ValueError, TypeError) as e:
        node.command_errors += 1
        node._error("command rejected: %s" % e)
        return False
    interval = node.interval
    for attr, value in apply:
        setattr(node, attr, value)
    if node.interval != interval:
        node.discovery_sent = False  # expire_after is 3 x the interval: announce it again
    node.commands += 1
    node.last_command = cmd
    node.log("command: %s" % msg)
    return True


def _check(node, key, value):
    """(node attribute, value) the command sets, or ValueError."""
    if key == "read_now":
        if value is not True:
            raise ValueError("read_now: expected true")
        return "read_requested", True
    if key == "stay_awake":
        if not isinstance(value, bool):
            raise ValueError("stay_awake: expected true or false")
        return "stay_awake", value
    if key == "interval":
        return "interval", _interval(node, value)
    raise ValueError("unknown command %r; expected read_now, stay_awake or interval" % key)


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
        raise ValueError("interval: expected %d..%d seconds or null" % (low, top))
    return secs
