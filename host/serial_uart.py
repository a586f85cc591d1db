# A pyserial port with the slice of the machine.UART API the meter link uses (write, any,
# readinto), so the node and kmptool run the same link code on a host with a USB IR head or
# against the virtual meter on a pty.

import serial


class SerialUart:
    def __init__(self, port, baudrate=1200, write_timeout_s=5.0):
        # 1200 baud 8N2 as the meter speaks (PROTOCOL.md 1.1); reads never block (timeout=0):
        # the link does its own deadlines.
        self._port = serial.Serial(
            port,
            baudrate,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_TWO,
            timeout=0,
            write_timeout=write_timeout_s,
        )

    def write(self, buf):
        n = self._port.write(bytes(buf))
        self._port.flush()  # until the bytes are on the wire: the meter times from the last byte
        return n

    def any(self):
        return self._port.in_waiting

    def readinto(self, buf):
        data = self._port.read(len(buf))
        n = len(data)
        if not n:
            return None
        buf[:n] = data
        return n

    def close(self):
        self._port.close()
