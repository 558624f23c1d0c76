# Training, one population per job: one `python -m maven train --seeds SPEC` process trains
# several seeds of one grid cell (env, map, algo, preset), each into its own run directory.
# A run is finished exactly when its summary.json exists (the trainer writes it last, atomically).
#
# Why a marker and not the summaries as outputs: Snakemake deletes a job's existing outputs
# before running it, and a job's outputs are fixed by its wildcards. So the jobs are made at
# parse time (common.smk, PENDING_JOBS) from the unfinished seeds only, in chunks of
# seeds_per_job, and each job's one output is a marker in logs/ naming its members. No rule has
# a summary.json as output: nothing Snakemake does (rerun, --forceall, a grid with more seeds)
# can delete or retrain a finished run. The marker is written only after every member's
# summary.json exists; it stays as the job's record next to its log (common.smk removes it as
# stale if the same members are ever pending again, i.e. a summary.json was deleted by hand).
# Checkpoints are not outputs either, so a killed or retried job resumes each member from its
# own checkpoint, whichever job it lands in next time.


rule train:
    output:
        TRAIN_DONE,
    log:
        TRAIN_LOG,
    wildcard_constraints:
        algo="|".join(PORT_ALGOS) or "(?!)",
    priority: train_priority
    conda:
        "../envs/maven.yaml"
    threads: lambda wildcards: train_resource(wildcards, "threads")
    resources:
        mem_mb=lambda wildcards: train_resource(wildcards, "mem_mb"),
        runtime=lambda wildcards: train_resource(wildcards, "runtime"),
        gpu=lambda wildcards: train_resource(wildcards, "gpu"),
    params:
        flags=train_flags,
        seeds=lambda wildcards: wildcards.seeds.replace("_", ","),
        out=train_out,
        members=train_members,
        python=PYTHON,
        gpu_slot=SCRIPTS / "gpu_slot.py",
        lock_dir=config["gpu_lock_dir"],
    shell:
        # --threads sizes torch's and XLA's CPU pools (maven/threads.py); the variables do the
        # same for anything the trainer starts, so jobs sharing a machine do not oversubscribe it.
        # `ls` then fails, naming it, if a member has no summary.json although the trainer exited 0.
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        ' XLA_FLAGS="${{XLA_FLAGS:-}} --xla_cpu_multi_thread_eigen=false'
        ' intra_op_parallelism_threads={threads}"'
        " {params.python} {params.gpu_slot} --gpus {resources.gpu} --lock-dir {params.lock_dir} --"
        " {params.python} -m maven train --env {wildcards.env} --map {wildcards.map}"
        " --seeds {params.seeds} --out '{params.out}' --threads {threads}"
        " {params.flags} >> {log} 2>&1"
        " && ls {params.members} > {output}"
