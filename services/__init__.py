"""Taskstream's services: api_gateway, auth_service, task_service, logger_service."""
