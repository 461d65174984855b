# Training runs: one JSON record per engine variant and batch under results/runs/, and a summary
# with the step-time ratios of this one run.
rule train_mnist:
    input:
        config="config/config.yaml",
    output:
        summary=f"{config.get('results', 'results')}/summary.md",
    log:
        f"{config.get('results', 'results')}/logs/train_mnist.log",
    conda:
        "../../envs/train.yaml"
    shell:
        "cladbench run --config {input.config} 2> {log}"


# The GW classifier trained by one engine (clad; manual where Clad is not built), evaluated on
# held-out simulated windows (roc_auc) and over the real GW150914 strain (gw150914_peak_offset_s).
rule train_gw:
    input:
        data="resources/gw/simulated-n{n_windows}-seed{seed}.h5".format(**config["gw"]),
        real="resources/gw/gw150914-windows.h5",
    output:
        f"{config.get('results', 'results')}/runs/gw-{{engine}}.json",
    wildcard_constraints:
        engine="clad|manual|libtorch|pytorch",
    params:
        gw=lambda wildcards: "--model {model} --conv {conv} --hidden {hidden} --batch {batch} --epochs {epochs} "
        "--lr {lr} --optimizer {optimizer} --train-range {train_range[0]}:{train_range[1]} "
        "--test-range {test_range[0]}:{test_range[1]}".format(**config["gw"]),
    log:
        f"{config.get('results', 'results')}/logs/train_gw_{{engine}}.log",
    conda:
        "../../envs/train.yaml"
    shell:
        "cladbench train --engine {wildcards.engine} --layout rowmajor --alloc arena --dataset gw-sim "
        "--data {input.data} --real {input.real} {params.gw} --threads 1 --out {output} 2> {log}"
