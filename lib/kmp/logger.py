# Logger responses (CID 0xA0..0xA3, MULTICAL 601/801 logger modules, DOC section 6.3). Not used by
# the node; kept here so that the codec and the host tool decode every documented frame.

from kmp.errors import LengthError
from kmp.value import decode_value

_TRAILER = 5  # LastReadOutRecID (2), NewestRecID (2), INFO (1)


def parse_log_time(data):
    """Logger timestamp [YY][MM][DD][hh][mm][ss][WK][Info] -> (year, month, day, h, m, s)."""
    if len(data) != 8:
        raise LengthError("logger time: expected 8 bytes, got %d" % len(data))
    return 2000 + data[0], data[1], data[2], data[3], data[4], data[5]


def parse_log_response(data):
    """Payload of a GetLog* response (after the CID).

    Returns a dict: log_id, rids, formats {rid: (unit, nob, siex)} with the raw SiEx byte,
    records [(rec_id, [signed mantissa, ...])], last_read_out_rec_id, newest_rec_id, info. The
    first record carries the register formats, later records only the value bytes in the same
    order: the SiEx sign and exponent of the format apply to every record.
    """
    n = len(data)
    if n < 2 + 2 + _TRAILER:
        raise LengthError("log response: %d byte(s), too short" % n)
    log_id, count = data[0], data[1]
    i = 2
    rids = []
    formats = {}
    nobs = []
    negative = []  # the SiEx sign bit of each register, for the records after the first
    records = []
    values = []
    rec_id = (data[i] << 8) | data[i + 1]
    i += 2
    for _ in range(count):
        if n - i < 6:
            raise LengthError("log response: register format truncated at byte %d" % i)
        rid = (data[i] << 8) | data[i + 1]
        unit = data[i + 2]
        siex = data[i + 4]
        mantissa, _, nob, i = decode_value(data, i + 3)
        rids.append(rid)
        formats[rid] = (unit, nob, siex)
        nobs.append(nob)
        negative.append(siex & 0x80)
        values.append(mantissa)
    records.append((rec_id, values))
    size = 2 + sum(nobs)
    while n - i > _TRAILER:
        if n - i - _TRAILER < size:
            raise LengthError("log response: record truncated at byte %d" % i)
        rec_id = (data[i] << 8) | data[i + 1]
        i += 2
        values = []
        for nob, neg in zip(nobs, negative):
            v = 0
            for k in range(nob):
                v = (v << 8) | data[i + k]
            values.append(-v if neg else v)
            i += nob
        records.append((rec_id, values))
    if n - i != _TRAILER:
        raise LengthError("log response: trailer needs 5 bytes, got %d" % (n - i))
    return {
        "log_id": log_id,
        "rids": rids,
        "formats": formats,
        "records": records,
        "last_read_out_rec_id": (data[i] << 8) | data[i + 1],
        "newest_rec_id": (data[i + 2] << 8) | data[i + 3],
        "info": data[i + 4],
    }
