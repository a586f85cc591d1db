# Delivering the flash buffer's readings on the history topic, oldest first, each acknowledged
# once the broker took it (QoS 1). Loaded by the node only while readings wait.

import payloads
from timefmt import iso_utc

# Readings delivered per cycle: bounded, so a cycle stays short after a long outage; a full
# 7-day buffer (672) drains in about 11 cycles.
PER_CYCLE = 64
_BATCH = 16


def send(node):
    """True when everything waiting went out (or what is left cannot be read back)."""
    buf = node.buffer
    base = node.cfg["mqtt"]["base_topic"]
    sent = 0
    while buf.pending() and sent < PER_CYCLE:
        batch = buf.peek(_BATCH)
        if not batch:
            return True  # what is left did not check out (torn/corrupt): nothing to send
        last = None
        for r in batch:
            node.platform.feed()
            when = None if r.time is None else iso_utc(r.time)
            topic, payload = payloads.history_message(base, node.node_id, r.values, when,
                                                      r.seq, r.uptime)  # fmt: skip
            if not node.mqtt.publish(topic, payload, False, 1):
                break
            last = r.seq
            sent += 1
            node.history_sent += 1
        if last is not None:
            buf.ack(last)
        if last is None or last != batch[-1].seq:
            _logged(node, sent)
            return False
    _logged(node, sent)
    return True


def _logged(node, sent):
    if sent:
        left = node.buffer.pending()
        node.log("history: %d buffered reading(s) delivered, %d still waiting" % (sent, left))
