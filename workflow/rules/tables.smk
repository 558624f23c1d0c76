# Final and best scores per map and algorithm (Markdown, LaTeX, CSV) and milestone tables.


rule tables:
    input:
        scores=rules.aggregate.output.scores,
        runs=rules.aggregate.output.runs,
    output:
        csv=[
            report(
                f"{RESULTS}/tables/{name}.csv",
                caption="../report/tables.rst",
                category="Tables",
            )
            for name in TABLES
        ],
        md=[f"{RESULTS}/tables/{name}.md" for name in TABLES],
        tex=[f"{RESULTS}/tables/{name}.tex" for name in TABLES],
    log:
        f"{LOGS}/tables.log",
    conda:
        "../envs/maven.yaml"
    params:
        reps=config["bootstrap_reps"],
        seed=config["bootstrap_seed"],
    script:
        "../scripts/tables.py"


rule milestones:
    input:
        scores=rules.aggregate.output.scores,
    output:
        report(
            f"{RESULTS}/tables/milestones_{{env}}.md",
            caption="../report/milestones.rst",
            category="Tables",
        ),
    log:
        f"{LOGS}/milestones_{{env}}.log",
    conda:
        "../envs/maven.yaml"
    params:
        spec=lambda wildcards: config["milestones"][wildcards.env],
    script:
        "../scripts/milestones.py"
