# Input data: verified copies in resources/, from the mirror (config data.mirror / $DATA_MIRROR)
# or the publishers. The logic (hashes, URLs, atomic writes, errors) is cladbench.data.fetch.
from cladbench.data.fetch import GROUPS

MIRROR = config.get("data", {}).get("mirror") or ""

for group, names in GROUPS.items():

    rule:
        name:
            f"fetch_{group.replace('-', '_')}"
        output:
            [f"resources/{name}" for name in names],
        log:
            f"results/logs/fetch_{group}.log",
        localrule: True
        conda:
            "../../envs/data.yaml"
        params:
            group=group,
            mirror=f"--mirror {MIRROR}" if MIRROR else "",
        shell:
            "cladbench fetch {params.group} {params.mirror} --resources resources 2> {log}"


# The GW datasets (cladbench.data.gw): simulated windows from the config, real GW150914 windows.
rule gw_simulate:
    output:
        "resources/gw/simulated-n{n}-seed{seed}.h5",
    log:
        "results/logs/gw_simulate_n{n}_seed{seed}.log",
    priority: 3  # the head of the run's longest chain (gw_simulate, train_gw, the search: workflow/rules/common.smk)
    conda:
        "../../envs/data.yaml"
    params:
        snr=lambda wildcards: "--snr-low {} --snr-high {}".format(*config["gw"]["snr_range"]),
        glitches=f"--glitch-fraction {config['gw']['glitch_fraction']}",
    shell:
        "cladbench gw simulate --out {output} --n {wildcards.n} --seed {wildcards.seed} {params.snr} {params.glitches} 2> {log}"


rule gw_real:
    input:
        gwosc=[f"resources/{name}" for name in GROUPS["gw150914"]],
        code=str(REPO / "src" / "cladbench" / "data" / "gw.py"),  # seconds to remake
    output:
        "resources/gw/gw150914-windows.h5",
    log:
        "results/logs/gw_real.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "cladbench gw real --out {output} --resources resources 2> {log}"
