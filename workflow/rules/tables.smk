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


rule outcomes:
    # Per-seed outcomes of one environment (config key `outcomes`): seeds reaching the target
    # with exact CIs and Fisher tests, median [IQR] of each metric at steps, P(improvement);
    # and a figure of that share over training (figures/<env>_success).
    input:
        scores=rules.aggregate.output.scores,
        runs=rules.aggregate.output.runs,
    output:
        md=report(
            f"{RESULTS}/tables/outcomes_{{env}}.md",
            caption="../report/outcomes.rst",
            category="Tables",
        ),
        csv=f"{RESULTS}/tables/outcomes_{{env}}.csv",
        png=report(
            f"{RESULTS}/figures/{{env}}_success.png",
            caption="../report/success.rst",
            category="Figures",
            subcategory="{env}",
        ),
        pdf=f"{RESULTS}/figures/{{env}}_success.pdf",
    log:
        f"{LOGS}/outcomes_{{env}}.log",
    conda:
        "../envs/maven.yaml"
    params:
        spec=lambda wildcards: config["outcomes"][wildcards.env],
        labels=labels(),
        reps=config["bootstrap_reps"],
        seed=config["bootstrap_seed"],
        grid_points=config["grid_points"],
    script:
        "../scripts/outcomes.py"
