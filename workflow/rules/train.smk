# One training run = one process and one directory. The run is finished exactly when its
# summary.json exists (the trainer writes it last, atomically). Checkpoints are not outputs, so
# Snakemake never deletes a partial run: a killed or retried job resumes from its checkpoint.


rule train:
    output:
        SUMMARY,
    log:
        f"{LOGS}/train/{{env}}/{{map}}/{{algo}}/seed{{seed}}.log",
    conda:
        "../envs/maven.yaml"
    threads: lambda wildcards: train_resource(wildcards, "threads")
    resources:
        mem_mb=lambda wildcards: train_resource(wildcards, "mem_mb"),
        runtime=lambda wildcards: train_resource(wildcards, "runtime"),
        gpu=lambda wildcards: train_resource(wildcards, "gpu"),
    params:
        flags=train_flags,
        python=PYTHON,
        gpu_slot=SCRIPTS / "gpu_slot.py",
        lock_dir=config["gpu_lock_dir"],
    shell:
        # torch and XLA (JAX's CPU backend) each keep to the job's threads, so that jobs
        # sharing a machine do not oversubscribe its cores.
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        ' XLA_FLAGS="${{XLA_FLAGS:-}} --xla_cpu_multi_thread_eigen=false'
        ' intra_op_parallelism_threads={threads}"'
        " {params.python} {params.gpu_slot} --gpus {resources.gpu} --lock-dir {params.lock_dir} --"
        " {params.python} -m maven train --env {wildcards.env} --map {wildcards.map}"
        " --algo {wildcards.algo} --seed {wildcards.seed} {params.flags}"
        " --out $(dirname {output}) >> {log} 2>&1"
