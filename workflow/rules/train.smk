# Training runs: one JSON record per (variant x dataset x model x batch x threads x repetition).


rule train_mnist:
    input:
        trainer=trainer,
        data=[f"resources/{name}" for name in MNIST_FILES[config["mnist"]["split"]]],
        test=[f"resources/{name}" for name in MNIST_FILES["t10k"]],
    output:
        f"{RESULTS}/runs/mnist/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.json",
    log:
        f"{RESULTS}/logs/train_mnist/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_mnist/{{variant}}-b{{batch}}-t{{threads}}-r{{rep}}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: lambda wildcards: int(wildcards.threads)
    resources:
        cpus_per_task=lambda wildcards: int(wildcards.threads),
        runtime=60,
        mem_mb=4000,
        gpu=gpus,
    params:
        engine=engine_flags,
        test=lambda wildcards, input: (
            f"--test-images {input.test[0]} --test-labels {input.test[1]}"
            if config["mnist"]["split"] == "train"
            else ""
        ),
        args=f"{MNIST_ARGS} --epochs {config['train']['epochs']}",
    shell:
        "cladbench train {params.engine} --dataset mnist --images {input.data[0]} --labels {input.data[1]} "
        "{params.test} {params.args} --batch {wildcards.batch} --threads {wildcards.threads} "
        "--repetition {wildcards.rep} --out {output} 2> {log}"


# The GW classifier: trained on simulated windows, evaluated on held-out ones (roc_auc) and over
# the real GW150914 strain (gw150914_peak_offset_s); its trained parameters go to the search.
rule train_gw:
    input:
        trainer=trainer,
        data=GW_DATA,
        real="resources/gw/gw150914-windows.h5",
    output:
        record=f"{RESULTS}/runs/gw/{{variant}}-r{{rep}}.json",
        params=f"{RESULTS}/gw/params/{{variant}}-r{{rep}}.npy",  # the trained network, for the search
    log:
        f"{RESULTS}/logs/train_gw/{{variant}}-r{{rep}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_gw/{{variant}}-r{{rep}}.tsv"
    priority: 2  # the longest chain of the run, first (see gw_simulate)
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        cpus_per_task=1,
        runtime=60,
        mem_mb=4000,
        gpu=gpus,
    params:
        engine=engine_flags,
        args="--model {model} --conv {conv} --hidden {hidden} --batch {batch} --epochs {epochs} --lr {lr} "
        "--optimizer {optimizer} --warmup {warmup} --train-range {train_range[0]}:{train_range[1]} "
        "--test-range {test_range[0]}:{test_range[1]}".format(**config["gw"]),
    shell:
        "cladbench train {params.engine} --dataset gw-sim --data {input.data} --real {input.real} {params.args} "
        "--threads 1 --repetition {wildcards.rep} --params-out {output.params} --out {output.record} 2> {log}"
