# rliable + seaborn figures per environment, PNG for the report and PDF for papers.


rule figures:
    input:
        scores=rules.aggregate.output.scores,
        runs=rules.aggregate.output.runs,
    output:
        png=[
            report(
                f"{RESULTS}/figures/{env}_{kind}.png",
                caption=f"../report/{kind}.rst",
                category="Figures",
                subcategory=env,
            )
            for env in ENVS
            for kind in FIGURE_KINDS
        ],
        pdf=[
            f"{RESULTS}/figures/{env}_{kind}.pdf"
            for env in ENVS
            for kind in FIGURE_KINDS
        ],
        captions=report(
            f"{RESULTS}/figures/captions.md",
            caption="../report/captions.rst",
            category="Figures",
        ),
    log:
        f"{LOGS}/figures.log",
    conda:
        "../envs/maven.yaml"
    params:
        envs=ENVS,
        reps=config["bootstrap_reps"],
        seed=config["bootstrap_seed"],
        grid_points=config["grid_points"],
        curve_metrics=config["curve_metrics"],
        labels=labels(),
    script:
        "../scripts/figures.py"
