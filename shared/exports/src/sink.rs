//! A CSV writer that uploads itself to S3 in parts as it grows: memory holds at most one part.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};

use crate::{ExportError, Exported};

/// Bytes buffered before a part is uploaded (S3's minimum part size is 5 MiB, except the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

pub struct S3Csv {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    /// Replaced by a fresh writer after each part (the csv writer hands its buffer back only whole).
    writer: csv::Writer<Vec<u8>>,
    parts: Vec<CompletedPart>,
    rows: u64,
    bytes: u64,
}

/// Every field quoted, so that a spreadsheet splitting on `;` or tab (locales where `,` is the decimal
/// mark) keeps a cell's separators inside it. Not its line breaks: LibreOffice Calc, importing with a
/// separator other than ours, ends a row at one, so [`crate::neutralise`] treats a line break (and a
/// separator) inside a cell as the start of another.
pub fn csv_writer<W: std::io::Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new().quote_style(csv::QuoteStyle::Always).from_writer(out)
}

fn new_writer() -> csv::Writer<Vec<u8>> {
    csv_writer(Vec::with_capacity(PART_SIZE + 64 * 1024))
}

fn s3_error<E: std::error::Error>(err: E) -> ExportError {
    ExportError::S3(DisplayErrorContext(err).to_string())
}

impl S3Csv {
    /// Starts a multipart upload of a private, encrypted CSV that downloads as an attachment, and
    /// writes the header row.
    pub async fn start(
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        header: &[&str],
    ) -> Result<Self, ExportError> {
        let filename = key.rsplit('/').next().unwrap_or("export.csv");
        let created = client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type("text/csv; charset=utf-8")
            .content_disposition(format!("attachment; filename=\"{filename}\""))
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(s3_error)?;
        let upload_id = created.upload_id().ok_or_else(|| ExportError::S3("no upload id".into()))?.to_owned();
        let mut sink = S3Csv {
            client: client.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id,
            writer: new_writer(),
            parts: Vec::new(),
            rows: 0,
            bytes: 0,
        };
        if let Err(err) = sink.writer.write_record(header) {
            sink.abort().await;
            return Err(ExportError::Csv(err.to_string()));
        }
        Ok(sink)
    }

    /// Writes one data row; uploads a part when enough is buffered.
    pub async fn write(&mut self, record: &[String]) -> Result<(), ExportError> {
        self.writer.write_record(record).map_err(|e| ExportError::Csv(e.to_string()))?;
        self.rows += 1;
        if self.writer.get_ref().len() >= PART_SIZE {
            self.upload_part().await?;
        }
        Ok(())
    }

    async fn upload_part(&mut self) -> Result<(), ExportError> {
        let full = std::mem::replace(&mut self.writer, new_writer());
        let body = full.into_inner().map_err(|e| ExportError::Csv(e.to_string()))?;
        if body.is_empty() && !self.parts.is_empty() {
            return Ok(());
        }
        self.bytes += body.len() as u64;
        let number = i32::try_from(self.parts.len() + 1).map_err(|_| ExportError::S3("too many parts".into()))?;
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(s3_error)?;
        self.parts.push(CompletedPart::builder().part_number(number).set_e_tag(uploaded.e_tag).build());
        Ok(())
    }

    /// Uploads what is left and completes the object; aborts the upload if that fails.
    pub async fn finish(mut self) -> Result<Exported, ExportError> {
        let result = async {
            self.upload_part().await?;
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(&self.upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(self.parts.clone())).build())
                .send()
                .await
                .map_err(s3_error)?;
            Ok::<_, ExportError>(())
        }
        .await;
        match result {
            Ok(()) => {
                Ok(Exported { key: self.key.clone(), rows: self.rows, bytes: self.bytes, parts: self.parts.len() })
            }
            Err(err) => {
                self.abort().await;
                Err(err)
            }
        }
    }

    /// Aborts the upload so S3 keeps no orphan parts (the bucket's lifecycle rule is the backstop).
    pub async fn abort(&self) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(err) = aborted {
            tracing::error!(key = self.key, error = %DisplayErrorContext(err), "multipart upload not aborted");
        }
    }
}
