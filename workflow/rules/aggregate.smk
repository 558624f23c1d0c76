# Every expected run -> tidy scores, one status row per run, and the grid in marl-eval format.


rule aggregate:
    input:
        expected_summaries(),
    output:
        scores="results/summary/scores.csv",
        runs=report(
            "results/summary/runs.csv",
            caption="../report/runs.rst",
            category="Runs",
        ),
    log:
        "logs/aggregate.log",
    conda:
        "../envs/maven.yaml"
    params:
        grid=RUNS,
    script:
        "../scripts/aggregate.py"


rule export:
    input:
        expected_summaries(),
    output:
        "results/summary/marl_eval.json",
    log:
        "logs/export.log",
    conda:
        "../envs/maven.yaml"
    params:
        grid=RUNS,
    script:
        "../scripts/export.py"
