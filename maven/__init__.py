"""MAVEN reproducibility suite: MAVEN, QMIX, VDN and QTRAN on the matrix game, SMAX and SMAC."""

__version__ = "0.1.0"
