# The original MAVEN code beside the port: grid entries whose variant has `runner: original`
# (e.g. maven_original, qmix_original in config/fig3.yaml) are trained by
# scripts/original/run_original.py, one seed per job, from the clone named by `original.repo`
# (with `original.python`, an interpreter that has torch, sacred and PyYAML; docs/pipeline.md).
# The script writes the same run directory as the trainer, summary.json last, so aggregation,
# figures and tables treat both alike. As for `train`, the output is a marker, never the run.


rule train_original:
    output:
        ORIGINAL_DONE,
    log:
        ORIGINAL_LOG,
    wildcard_constraints:
        algo="|".join(ORIGINAL_ALGOS) or "(?!)",
        seeds=r"\d+",
    conda:
        # the harness and converter; the original itself runs under original.python
        "../envs/maven.yaml"
    threads: config["original"].get("threads", 1)
    resources:
        mem_mb=2000,
        runtime=config["original"].get("runtime", 120),
        gpu=0,
    params:
        python=PYTHON,
        script=SCRIPTS.parent.parent / "scripts" / "original" / "run_original.py",
        repo=config["original"].get("repo", ""),
        original_python=config["original"].get("python", "python"),
        out=lambda wildcards: RUN_DIR.format(
            env=wildcards.env,
            map=wildcards.map,
            algo=wildcards.algo,
            seed=wildcards.seeds,
        ),
        budget=lambda wildcards: (
            f"--t-max {t_max_of(wildcards.env, wildcards.map)}"
            if t_max_of(wildcards.env, wildcards.map)
            else ""
        ),
    shell:
        "{params.python} {params.script} --repo '{params.repo}' --algo {wildcards.algo}"
        " --seed {wildcards.seeds} --out '{params.out}' --python '{params.original_python}'"
        " --threads {threads} {params.budget} >> {log} 2>&1"
        " && ls {params.out}/summary.json > {output}"
