"""Where the processes of the api_gateway start."""
