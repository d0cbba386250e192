"""GitHub: events, comment commands, the research pull request, and the Action's entry point."""
