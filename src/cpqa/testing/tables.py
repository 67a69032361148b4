"""Reading the CLI's summary tables back, for tests and scripts."""


def stage_states(table_output: str) -> dict[str, str]:
    """stage → state, read from the summary table `cpqa build` prints (its first table)."""
    lines = table_output.splitlines()
    end = next((i for i, line in enumerate(lines) if line.startswith("└")), len(lines))
    rows = [line.split("│") for line in lines[:end] if line.startswith("│")]
    return {cells[1].strip(): cells[2].strip() for cells in rows if len(cells) > 2 and cells[1].strip()}
