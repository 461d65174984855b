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
