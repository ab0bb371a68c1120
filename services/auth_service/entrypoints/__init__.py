"""Where the processes of the auth_service start."""
