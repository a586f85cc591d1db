# KMP codec errors: one base class, one subclass per way a frame can be wrong.
# Every message says what was expected and what came, so a log line is enough to debug a head.


class KmpError(Exception):
    """Base of every error the codec raises."""


class FrameError(KmpError):
    """Bad framing: start/stop byte, escape sequence, truncated frame."""


class CrcError(KmpError):
    """CRC-16/XMODEM residue over address..CRC is not zero."""


class LengthError(KmpError):
    """Frame too long for the buffer, or data shorter/longer than its fields say."""


class AddressError(KmpError):
    """Response from another destination address than the one asked."""


class CidError(KmpError):
    """Response carries another command id than the one asked."""


class RequestError(KmpError):
    """A request we were asked to build is not valid (e.g. more than 8 registers)."""


class NoAnswer(KmpError):
    """The meter sent nothing at all: optical eye asleep, head misaligned, wrong wiring."""


class BudgetSpent(KmpError):
    """No request may go to the meter now: its read budget is used up (a retry or a re-ask
    that would pass it is not sent)."""


class PortError(KmpError):
    """The serial port itself failed (a USB head unplugged, a UART that raises): a meter fault
    like a silent meter, but one that costs the meter nothing, so it is not backed off."""
