"""The imi-bench leaderboard: a Gradio app that renders scored result files (it never imports scoring code)."""

__all__ = ["EMPTY_MESSAGE"]

EMPTY_MESSAGE = "No results yet — score a model with `imibench score` or run `imibench demo`."
