# Thin entry point: `snakemake --cores N` from the repository root runs workflow/Snakefile.


include: "workflow/Snakefile"


localrules:
    default,


rule default:
    default_target: True
    input:
        rules.all.input,
