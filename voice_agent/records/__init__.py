"""What the receptionist stores: its tables and migrations, businesses, call records, the read
model the dashboard uses, SMS policies per business and retention."""
