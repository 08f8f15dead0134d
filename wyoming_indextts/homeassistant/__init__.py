"""Home Assistant's Assist replies rendered ahead in the cloned voice.

`house`: the names a house has (areas, floors, exposed entities); `names`: fetching them over
Home Assistant's WebSocket API; `templates`: rendering a response template as Home Assistant
does; `replies`: expanding the `home-assistant-intents` templates over a house's names into
the exact strings Home Assistant will send, ranked and capped; `ahead`: feeding them to the
pre-renderer and reporting progress.
"""
