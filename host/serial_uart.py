# A pyserial port with the slice of the machine.UART API the meter link uses (write, any,
# readinto), so the node and kmptool run the same link code on a host with a USB IR head or
# against the virtual meter on a pty.
#
# A USB head can be unplugged and plugged back (the device goes, then comes back at the same
# path): a port that fails is closed, and the next call opens it again. Every failure raises
# OSError (pyserial's SerialException is one), which the meter link reports as a PortError:
# the node says so and keeps running instead of dying with the device.

import serial


class SerialUart:
    def __init__(self, port, baudrate=1200, write_timeout_s=5.0, open_now=True):
        self.port = port
        self._baudrate = baudrate
        self._write_timeout_s = write_timeout_s
        self._port = None
        self.opens = 0  # successful opens (a reopen after an unplug counts)
        if open_now:
            self._open()

    def _open(self):
        if self._port is not None:
            return self._port
        try:
            # 1200 baud 8N2 as the meter speaks (PROTOCOL.md 1.1); reads never block
            # (timeout=0): the link does its own deadlines.
            self._port = serial.Serial(
                self.port,
                self._baudrate,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_TWO,
                timeout=0,
                write_timeout=self._write_timeout_s,
            )
        except (OSError, ValueError) as e:  # SerialException is an OSError
            raise OSError("cannot open %s: %s" % (self.port, _reason(e)))
        self.opens += 1
        return self._port

    def _failed(self, e):
        """The device went away (or broke): close it, so the next call opens it again."""
        self.close()
        return OSError("%s: %s" % (self.port, _reason(e)))

    def write(self, buf):
        port = self._open()
        try:
            n = port.write(bytes(buf))
            port.flush()  # until the bytes are on the wire: the meter times from the last byte
        except OSError as e:  # SerialTimeoutException too
            raise self._failed(e)
        return n

    def any(self):
        port = self._open()
        try:
            return port.in_waiting
        except OSError as e:
            raise self._failed(e)

    def readinto(self, buf):
        port = self._open()
        try:
            data = port.read(len(buf))
        except OSError as e:
            raise self._failed(e)
        n = len(data)
        if not n:
            return None
        buf[:n] = data
        return n

    def close(self):
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except OSError:
                pass


def _reason(e):
    # pyserial wraps the OS error in text such as "[Errno 2] could not open port /dev/x:
    # [Errno 2] No such file or directory: '/dev/x'"; the last part says it best.
    text = str(e) or type(e).__name__
    if "] " in text:
        text = text.rsplit("] ", 1)[1]
    return text
