"""alledge.train: desktop side."""
