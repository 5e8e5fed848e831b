"""The only code that opens SQLAlchemy sessions: models and small query/save functions."""
