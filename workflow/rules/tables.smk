# Final and best scores per map and algorithm (Markdown, LaTeX, CSV) and milestone tables.


rule tables:
    input:
        scores=rules.aggregate.output.scores,
        runs=rules.aggregate.output.runs,
    output:
        csv=[
            report(
                f"results/tables/{name}.csv",
                caption="../report/tables.rst",
                category="Tables",
            )
            for name in TABLES
        ],
        md=[f"results/tables/{name}.md" for name in TABLES],
        tex=[f"results/tables/{name}.tex" for name in TABLES],
    log:
        "logs/tables.log",
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
            "results/tables/milestones_{env}.md",
            caption="../report/milestones.rst",
            category="Tables",
        ),
    log:
        "logs/milestones_{env}.log",
    conda:
        "../envs/maven.yaml"
    params:
        spec=lambda wildcards: config["milestones"][wildcards.env],
    script:
        "../scripts/milestones.py"
