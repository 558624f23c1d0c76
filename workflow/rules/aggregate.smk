# Every expected run -> tidy scores, one status row per run, and the grid in marl-eval format.


rule aggregate:
    input:
        expected_summaries(),
    output:
        scores=f"{RESULTS}/summary/scores.csv",
        runs=report(
            f"{RESULTS}/summary/runs.csv",
            caption="../report/runs.rst",
            category="Runs",
        ),
    log:
        f"{LOGS}/aggregate.log",
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
        f"{RESULTS}/summary/marl_eval.json",
    log:
        f"{LOGS}/export.log",
    conda:
        "../envs/maven.yaml"
    params:
        grid=RUNS,
    script:
        "../scripts/export.py"
