"""Exit codes of the helixgate command."""

OK = 0
INPUT_REJECTED = 1  # the input could not be converted; stderr says what and where
USAGE = 2  # bad arguments (argparse uses 2 as well)
