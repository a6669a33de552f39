"""Leaderboards: pick runs (runs.py), build the table (table.py), render it (render.py), and published
numbers from the paper (reported.py). `deem-eval leaderboard` is LeaderboardCommand."""

from deem_eval.views.leaderboard.command import LeaderboardCommand, make_board

__all__ = ["LeaderboardCommand", "make_board"]
