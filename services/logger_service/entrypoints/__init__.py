"""Where the processes of the logger_service start."""
