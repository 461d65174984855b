# Input data: verified copies in resources/, from the mirror (config data.mirror / $DATA_MIRROR)
# or the publishers. The logic (hashes, URLs, atomic writes, errors) is cladbench.data.
from cladbench.data import GROUPS

MIRROR = config.get("data", {}).get("mirror") or ""

for group, names in GROUPS.items():

    rule:
        name:
            f"fetch_{group.replace('-', '_')}"
        output:
            [f"resources/{name}" for name in names],
        localrule: True
        conda:
            "../../envs/data.yaml"
        params:
            group=group,
            mirror=f"--mirror {MIRROR}" if MIRROR else "",
        log:
            f"results/logs/fetch_{group}.log",
        shell:
            "cladbench fetch {params.group} {params.mirror} --resources resources 2> {log}"
