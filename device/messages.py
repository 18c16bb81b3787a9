"""One-line error messages: the CLIs print one line, `error: ...`, never a traceback."""


def first_line(exc):
    """The first non-empty line of an exception's text, else its type's name.

    Libraries (Keras, LiteRT, libjpeg) raise multi-line messages; the first line names the
    cause, the rest is their internal context.
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
