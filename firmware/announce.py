# Home Assistant discovery and the units topic for a node: sent once the meter has told its
# units, and again when something they say changes (units, interval, configuration) or Home
# Assistant comes back online. Loaded for that and dropped again by the node.
#
# The config topics announced are remembered on flash, in a small file beside the buffer
# directory that is written only when the set changes (rare: flash wear), so an entity the node
# no longer has (a sensor dropped from config.json, a renamed node, another discovery prefix,
# discovery switched off) is removed from Home Assistant with an empty retained config instead
# of staying behind as a ghost.

import json

import discovery
from mqttlink import FIRMWARE_VERSION

_SUFFIX = ".discovery"  # beside the buffer directory: /buffer.discovery on the ESP32


def descriptors(node):
    """(id, name, rid, kind, unit_code, exponent) per sensor, units as the meter sent them
    (None until a register has been read)."""
    out = []
    for sid, rid, name, kind in node.sensors:
        unit = node.units.get(sid)
        code, exponent = unit if unit else (None, None)
        out.append((sid, name, rid, kind, code, exponent))
    return out


def device_info(node):
    from kmp.meters import meter_type_name

    model = node.cfg["meter"]["model"] or None  # the user's name for it comes first
    if model is None and node.meter_type is not None:
        model = meter_type_name(node.meter_type)
    return {
        "model": model,
        "serial": node.serial,
        "sw_version": node.sw_revision,
    }


def state_path(node):
    """The file of announced topics: the buffer directory's path plus '.discovery'; None
    without a buffer (nothing is remembered, nothing removed)."""
    path = getattr(node.buffer, "path", None)
    return path.rstrip("/") + _SUFFIX if path else None


def announce(node):
    """Publish discovery (when enabled), an empty retained config for every topic announced
    before that the node no longer has, and units, all retained; True when all went out.
    Before the meter's first answer: the diagnostic entities only, and no units.

    A slow broker may end a cycle's MQTT time in the middle: node.announce_progress (the
    fingerprint of what is announced, messages already out) lets the next cycle go on from
    there instead of starting over, as long as nothing the messages say has changed."""
    from fingerprint import discovery_hash
    from node import DIAG_EVERY

    fp = discovery_hash(node)
    progress = node.announce_progress
    skip = progress[1] if progress is not None and progress[0] == fp else 0
    out = [0]

    def send(topic, payload):
        if out[0] < skip:
            out[0] += 1
            return True  # went out in an earlier cycle of this same announcement
        if not node.mqtt.publish(topic, payload, True, 1):
            node.announce_progress = (fp, out[0])
            return False
        out[0] += 1
        return True

    mq = node.cfg["mqtt"]
    prefix = mq["discovery_prefix"]
    sensors = descriptors(node)
    ids = [s[0] for s in sensors]
    path = state_path(node)
    known = load(path)
    recorded = known is not None
    if path is None:
        known = []  # nowhere to remember: nothing is removed
    elif not recorded:
        # No record (first start of this firmware): earlier firmware put configs under the
        # unique_id lower-cased; those that are not today's topics go.
        known = list(discovery.topics(prefix, node.node_id, ids, True, True))
    # Every configured sensor keeps its topic, also one not announced yet (its unit unknown).
    keep = list(discovery.topics(prefix, node.node_id, ids)) if mq["discovery"] else []
    remembered = []
    # Removals first: while an old config with the same unique_id sits under another topic,
    # HA ignores the new one (and drops the entity when the old topic is emptied after it).
    for topic in known:
        if topic in keep:
            remembered.append(topic)
        elif not send(topic, ""):
            return False  # the record stays as it was: removed again next time
    if mq["discovery"]:
        for topic, payload in discovery.discovery_messages(
            node.node_id,
            mq["base_topic"],
            prefix,
            device_info(node),
            sensors,
            node.paced_interval(),  # expire_after: 3 x the time between reads
            FIRMWARE_VERSION,
            ha_version=mq["ha_version"],
            diag_every=DIAG_EVERY,
        ):
            if not send(topic, payload):
                return False
            if topic not in remembered:
                remembered.append(topic)
    if path is not None and (not recorded or sorted(remembered) != sorted(known)):
        save(path, remembered)
    if node.units:  # (before the meter's first answer there are none: the retained ones stay)
        topic, payload = discovery.units_message(mq["base_topic"], node.node_id, sensors)
        if not send(topic, payload):
            return False
    node.discovery_sent = True
    node.announce_progress = None
    return True


def load(path):
    """The remembered topics, or None when there is no record (or an unreadable one)."""
    if path is None:
        return None
    try:
        with open(path) as f:
            topics = json.load(f)
    except (OSError, ValueError):
        return None
    return topics if isinstance(topics, list) else None


def save(path, topics):
    """The record, written atomically (jsonfile); if the flash refuses, the removals are
    published again next time."""
    import jsonfile

    jsonfile.write(path, topics)
