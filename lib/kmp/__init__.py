# Kamstrup Meter Protocol (KMP) codec, portable between MicroPython 1.29 and CPython 3.11+.
# Submodules are imported on demand to keep RAM low on the ESP32:
#   kmp.errors    exception hierarchy
#   kmp.frame     CRC-16/XMODEM, byte stuffing, request frames, receive-side FrameAssembler
#   kmp.value     exact [NoB][SiEx][integer] values, decimal text with integer arithmetic only
#   kmp.messages  GetType / GetSerialNo / GetRegister payloads
#   kmp.units     unit code table
#   kmp.registers register ids, names and the ESPHome sensor keys
