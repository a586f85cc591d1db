# A CRC-32 of everything that shapes the discovery and units messages, computed from what the
# node holds, without loading discovery.py: a battery wake re-announces only when it changes,
# and an announcement cut short by a slow broker resumes where it stopped while it is the same.

from binascii import crc32


def discovery_hash(node):
    """The units the meter reported, the interval (expire_after), ids and names, node id,
    topics, discovery on/off, ha_version, the meter's identity and configured model, and our
    firmware version (origin)."""
    from mqttlink import FIRMWARE_VERSION

    mq = node.cfg["mqtt"]
    h = crc32(
        ("%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s"
         % (FIRMWARE_VERSION, node.node_id, mq["base_topic"], mq["discovery_prefix"],
            mq["discovery"], mq["ha_version"], node.paced_interval(), node.meter_type, node.serial,
            node.sw_revision, node.cfg["meter"]["model"])).encode()
    )  # fmt: skip
    for sid, rid, name, kind in node.sensors:
        h = crc32(("|%s|%d|%s|%d" % (sid, rid, name, kind)).encode(), h)
        unit = node.units.get(sid)
        if unit is not None:
            h = crc32(("|%d|%d" % unit).encode(), h)
    return h
