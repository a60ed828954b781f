"""Reports: loss graphs, results tables, paired statistics, side-by-side answers, one HTML file."""
