"""alledge.convert: desktop side."""
