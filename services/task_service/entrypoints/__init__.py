"""Where the processes of the task_service start."""
