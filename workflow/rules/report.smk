# `snakemake --report report.html` collects every output marked with report(); this file sets
# the report's front page and names the targets the default rule builds.


report: "../report/workflow.rst"


def final_outputs():
    milestones = expand(
        rules.milestones.output[0],
        env=[env for env in ENVS if env in config["milestones"]],
    )
    outcomes = expand(
        rules.outcomes.output.md,
        env=[env for env in ENVS if env in config["outcomes"]],
    )
    return [
        *outcomes,
        *rules.figures.output,
        *rules.tables.output,
        *milestones,
        *rules.export.output,
    ]
