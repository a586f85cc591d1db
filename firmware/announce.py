# Home Assistant discovery and the units topic for a node: sent once the meter has told its
# units, and again only when they change. Loaded for that and dropped again by the node.

import discovery
from mqttlink import FIRMWARE_VERSION


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
    from kmp.messages import meter_type_name

    return {
        "model": None if node.meter_type is None else meter_type_name(node.meter_type),
        "serial": node.serial,
        "sw_version": node.sw_revision,
    }


def announce(node):
    """Publish discovery (when enabled) and units, retained; True when all went out."""
    from node import DIAG_EVERY

    mq = node.cfg["mqtt"]
    sensors = descriptors(node)
    if mq["discovery"]:
        for topic, payload in discovery.discovery_messages(
            node.node_id,
            mq["base_topic"],
            mq["discovery_prefix"],
            device_info(node),
            sensors,
            node.interval,
            FIRMWARE_VERSION,
            diag_every=DIAG_EVERY,
        ):
            if not node.mqtt.publish(topic, payload, True, 1):
                return False
    topic, payload = discovery.units_message(mq["base_topic"], node.node_id, sensors)
    if not node.mqtt.publish(topic, payload, True, 1):
        return False
    node.discovery_sent = True
    return True
