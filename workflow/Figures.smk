# Figures only: aggregate, plot, tabulate and report the runs that exist; never trains.
# Selected by profiles/figures (`snakefile:`), so no --config value can bring training back:
# the train rule is not in this file or anything it includes, and figures_only is forced on
# (after every --config and --configfile) so no population job is planned either. Runs without
# a finished summary.json are listed as missing, running, diverged or failed in runs.csv and
# in every caption.

from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


configfile: Path(workflow.current_basedir).parent / "config" / "config.yaml"


config["figures_only"] = True


include: "rules/common.smk"
include: "rules/aggregate.smk"
include: "rules/figures.smk"
include: "rules/tables.smk"
include: "rules/report.smk"


localrules:
    all,
    aggregate,
    export,
    figures,
    tables,
    milestones,


rule all:
    default_target: True
    input:
        run_targets(),
        final_outputs(),
