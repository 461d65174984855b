# The C++ core, one target per variant: build/<device>-<engine>-<layout>-<alloc>/cladbench-train.
# The LibTorch-facing core compiles once and is shared; a variant adds only its kernel objects.
CPP_SOURCES = sorted(
    str(p) for p in (REPO / "cpp").rglob("*") if p.suffix in (".cpp", ".hpp", ".h", ".c", ".txt", ".cmake", ".in")
)


rule configure:
    input:
        [p for p in CPP_SOURCES if p.endswith((".txt", ".cmake", ".in"))],
    output:
        f"{BUILD}/build.ninja",
    log:
        f"{RESULTS}/logs/configure.log",
    localrule: True  # cmake's configure step is quick and may need the login node's compilers
    conda:
        "../../envs/train.yaml"
    shell:
        f"make -s -C {REPO} configure BUILD={BUILD} > {{log}} 2>&1 && touch {{output}}"


# What makes a binary stale is its sources, the CMake files among them; build.ninja must exist but its
# time says nothing: CMake rewrites it at every configure (each `make build` runs one) even when
# nothing changed, so a newer build.ninja would send every binary to be rebuilt for nothing.
CONFIGURED = ancient(f"{BUILD}/build.ninja")


rule build_variant:
    input:
        CONFIGURED,
        CPP_SOURCES,
    output:
        f"{BUILD}/{{variant}}/cladbench-train",
    log:
        f"{RESULTS}/logs/build_{{variant}}.log",
    wildcard_constraints:
        variant=variant_pattern(CPP_ENGINES),
    conda:
        "../../envs/train.yaml"
    params:
        # the CMake target of build/<device>-<engine>-<layout>-<alloc>: train_<device>_<engine>_<layout>_<alloc>
        target=lambda wildcards: "train_" + "_".join(wildcards.variant.split("-")),
    # ninja leaves an up-to-date binary alone; touch it so Snakemake sees it as done.
    shell:
        f"cmake --build {BUILD} --target {{params.target}} > {{log}} 2>&1 && touch {{output}}"
