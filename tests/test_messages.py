"""alledge.device.messages.first_line: one line from any exception."""
from alledge.device.messages import first_line


def test_first_line_of_multi_line_and_empty_messages():
    assert first_line(ValueError("\n  cannot load\ntrace: a\nb")) == "cannot load"
    assert first_line(RuntimeError("")) == "RuntimeError"
    assert first_line(OSError("  \n ")) == "OSError"
