"""Algorithm registry: name -> learner class. Adding an algorithm is one file plus one line here."""

from __future__ import annotations

import importlib

from maven.errors import choose

ALGOS: dict[str, str] = {
    "maven": "maven.maven_learner:MavenLearner",
    "qmix": "baselines.qmix:QMIXLearner",
    "vdn": "baselines.vdn:VDNLearner",
    "qtran_base": "baselines.qtran:QTranBaseLearner",
    "qtran_alt": "baselines.qtran:QTranAltLearner",
}


def check(algo: str) -> None:
    choose("algorithm", algo, ALGOS)


def learner_class(algo: str):
    check(algo)
    module, name = ALGOS[algo].split(":")
    return getattr(importlib.import_module(module), name)
