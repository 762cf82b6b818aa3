"""A Django project receiving Rocket.Chat's webhook (omnihook-receiver[django]).

cd examples && DJANGO_SETTINGS_MODULE=django_app.settings uv run uvicorn django_app.asgi:application
"""
