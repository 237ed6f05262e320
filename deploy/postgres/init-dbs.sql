-- One database per service (they share no database). Runs once, on the first start of an
-- empty data volume, as the POSTGRES_USER (`fx`), which owns every database it creates.
CREATE DATABASE fx_referral_binding;
CREATE DATABASE fx_qualification;
CREATE DATABASE fx_commission;
CREATE DATABASE fx_payout;
