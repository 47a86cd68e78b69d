from infra.node_notices import print_as_text

# Before infra.app imports aws_cdk, which starts jsii's node process.
print_as_text()

from infra.app import main  # noqa: E402

raise SystemExit(main())
