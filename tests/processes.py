"""The process helpers the tests share (they live in ``surgecast.processes``, which the
dashboard demo uses too)."""

from surgecast.processes import free_port, http_ready, poll, stop_process

__all__ = ["free_port", "http_ready", "poll", "stop_process"]
