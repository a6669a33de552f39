"""What people read: the terminal/Markdown/CSV leaderboard, the self-contained HTML report and the helpers
they share (escaping, HTML fragments, terminal display). Imports every layer below, none imports it."""
