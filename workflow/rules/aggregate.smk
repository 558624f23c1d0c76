# Every expected run -> tidy scores, one status row per run, and the grid in marl-eval format.
# Inputs: the finished runs' summary.json files and the markers of the pending population jobs.


rule aggregate:
    input:
        run_targets(),
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
        run_targets(),
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
